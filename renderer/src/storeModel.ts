import { computed, type Ref, type WritableComputedRef } from 'vue';

/**
 * A v-model target over a store's state: reading a field reads the store, writing one calls
 * the store's action. A form binds its inputs to it, so a view never writes a store itself.
 */
export function modelOf<T extends object>(read: () => T, write: <K extends keyof T>(key: K, value: T[K]) => void): T {
  return new Proxy(read(), {
    get: (_target, key) => Reflect.get(read(), key),
    set: (_target, key, value: T[keyof T]) => {
      // v-model assigns only the keys the template names, which are T's.
      write(key as keyof T, value);
      return true;
    },
  });
}

/** A v-model for one piece of a store's state (from storeToRefs): reads it, writes it through the store's action. */
export function viaAction<T>(state: Ref<T>, action: (value: T) => void): WritableComputedRef<T> {
  return computed({ get: () => state.value, set: action });
}
